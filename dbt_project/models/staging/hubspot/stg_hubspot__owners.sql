{{ config(enabled=crm_family() == 'hubspot') }}

with

source as (
    select * from {{ source('hubspot', 'owners') }}
),

typed as (
    select
        {{ clean_text('id') }} as rep_id,
        nullif(trim(concat(coalesce(trim(firstname), ''), ' ', coalesce(trim(lastname), ''))), '') as rep_name,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('team_id') }} as user_role_id,
        not coalesce({{ parse_bool('archived') }}, false) as is_active,
        {{ parse_timestamp('createdat') }} as created_at,
        {{ parse_timestamp('updatedat') }} as system_modstamp,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'rep_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

{#- HubSpot owners carry no title, manager, time zone or hire date. -#}
select
    rep_id,
    rep_name,
    email,
    {{ dbt.split_part('email', "'@'", 2) }} as email_domain,
    cast(null as varchar) as title,
    user_role_id,
    cast(null as varchar) as manager_id,
    is_active,
    '{{ var("hubspot_time_zone") }}' as time_zone,
    cast(null as date) as hire_date,
    created_at,
    system_modstamp
from latest
where version_rank = 1 and rep_id is not null
