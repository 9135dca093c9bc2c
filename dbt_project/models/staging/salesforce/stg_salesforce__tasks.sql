{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'task') }}
),

typed as (
    select
        {{ clean_text('id') }} as task_id,
        {{ clean_text('whoid') }} as who_id,
        {{ clean_text('whatid') }} as what_id,
        {{ clean_text('ownerid') }} as owner_id,
        {{ clean_text('subject') }} as subject,
        {{ clean_text('tasksubtype') }} as task_subtype,
        {{ clean_text('status') }} as status,
        {{ parse_date('activitydate') }} as activity_date,
        {{ parse_timestamp('createddate') }} as created_at,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        coalesce({{ parse_bool('isdeleted') }}, false) as is_deleted,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'task_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    task_id, who_id, what_id, owner_id, subject, task_subtype, status, activity_date,
    created_at, system_modstamp
from latest
where version_rank = 1 and task_id is not null and not is_deleted
    and {{ not_quarantined('task', 'task_id') }}
