{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'userrole') }}
),

typed as (
    select
        {{ clean_text('id') }} as user_role_id,
        {{ clean_text('name') }} as role_name,
        {{ clean_text('parentroleid') }} as parent_role_id,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'user_role_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select user_role_id, role_name, parent_role_id, system_modstamp
from latest
where version_rank = 1 and user_role_id is not null
