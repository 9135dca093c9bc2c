{{ config(enabled=crm_family() == 'hubspot') }}

with

owners as (
    select * from {{ source('hubspot', 'owners') }}
),

teams as (
    select
        {{ clean_text('team_id') }} as user_role_id,
        {{ clean_text('team_name') }} as role_name,
        {{ parse_timestamp('updatedat') }} as updated_at
    from owners
)

select
    user_role_id,
    max(role_name) as role_name,
    cast(null as varchar) as parent_role_id,
    max(updated_at) as system_modstamp
from teams
where user_role_id is not null
group by user_role_id
