{{ config(enabled=crm_family() == 'hubspot') }}

{#- Calls, sales emails, meetings and to-dos in the shape of Salesforce tasks: who is the first
    associated contact, what the first associated deal (else company). -#}
{%- set kinds = [
    {'table': 'calls', 'subtype': 'Call', 'subject': 'hs_call_title', 'status': 'hs_call_status'},
    {'table': 'emails', 'subtype': 'Email', 'subject': 'hs_email_subject', 'status': 'hs_email_status'},
    {'table': 'meetings', 'subtype': 'Meeting', 'subject': 'hs_meeting_title', 'status': 'hs_meeting_outcome'},
    {'table': 'tasks', 'subtype': 'Task', 'subject': 'hs_task_subject', 'status': 'hs_task_status'},
] -%}
with

{% for kind in kinds %}
{{ kind.table }} as (
    select
        {{ clean_text('id') }} as task_id,
        nullif({{ dbt.split_part('associations_contacts', "','", 1) }}, '') as who_id,
        coalesce(
            nullif({{ dbt.split_part('associations_deals', "','", 1) }}, ''),
            nullif({{ dbt.split_part('associations_companies', "','", 1) }}, '')
        ) as what_id,
        {{ clean_text('hubspot_owner_id') }} as owner_id,
        {{ clean_text(kind.subject) }} as subject,
        '{{ kind.subtype }}' as task_subtype,
        upper({{ clean_text(kind.status) }}) as status_code,
        {{ parse_date('hs_timestamp') }} as activity_date,
        {{ parse_timestamp('hs_createdate') }} as created_at,
        {{ parse_timestamp('hs_lastmodifieddate') }} as system_modstamp,
        coalesce({{ parse_bool('archived') }}, false) as is_archived,
        _loaded_at
    from {{ source('hubspot', kind.table) }}
    where {{ not_quarantined(kind.table, clean_text('id')) }}
),
{% endfor %}

engagements as (
    {% for kind in kinds %}
    select * from {{ kind.table }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

latest as (
    {{ latest_per_key('engagements', 'task_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    task_id,
    who_id,
    what_id,
    owner_id,
    subject,
    task_subtype,
    case status_code
        when 'COMPLETED' then 'Completed'
        when 'SENT' then 'Completed'
        when 'NOT_STARTED' then 'Not Started'
        when 'IN_PROGRESS' then 'In Progress'
        when 'WAITING' then 'Waiting on someone else'
        when 'DEFERRED' then 'Deferred'
        when 'SCHEDULED' then 'Not Started'
        else status_code
    end as status,
    activity_date,
    created_at,
    system_modstamp
from latest
where version_rank = 1 and task_id is not null and not is_archived
