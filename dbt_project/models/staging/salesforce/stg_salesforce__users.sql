{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'user') }}
),

known_zones as (
    {{ known_time_zones() }}
),

typed as (
    select
        {{ clean_text('id') }} as rep_id,
        {{ clean_text('name') }} as rep_name,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('title') }} as title,
        {{ clean_text('userroleid') }} as user_role_id,
        {{ clean_text('managerid') }} as manager_id,
        {{ parse_bool('isactive') }} as is_active,
        {{ clean_text('timezonesidkey') }} as time_zone_raw,
        {{ parse_date('hire_date__c') }} as hire_date,
        {{ parse_timestamp('createddate') }} as created_at,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'rep_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    rep_id,
    rep_name,
    email,
    {{ dbt.split_part('email', "'@'", 2) }} as email_domain,
    title,
    user_role_id,
    manager_id,
    is_active,
    case when time_zone_raw in (select name from known_zones) then time_zone_raw else 'UTC' end as time_zone,
    hire_date,
    created_at,
    system_modstamp
from latest
where version_rank = 1 and rep_id is not null
