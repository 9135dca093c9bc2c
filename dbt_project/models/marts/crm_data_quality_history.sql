{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='as_of') }}

{#- One row per nightly run (as_of day) per check, at org level (owner_id empty) and per owner, for
    the hygiene trend. A re-run for the same as_of replaces that day's rows. -#}
{%- set checks = ['open_opportunity_past_close_date', 'opportunity_missing_amount',
    'lead_without_activity_7d', 'duplicate_lead_email', 'duplicate_contact_email',
    'account_missing_industry', 'contact_missing_email', 'lead_without_owner', 'unknown_stage'] -%}
with

worklist as (
    select * from {{ ref('crm_data_quality') }}
),

checks as (
    {% for check in checks %}
    select '{{ check }}' as check_name{% if not loop.last %} union all{% endif %}
    {% endfor %}
),

org_level as (
    select
        'org' as level,
        checks.check_name,
        cast(null as {{ dbt.type_string() }}) as owner_id,
        cast(coalesce(sum(worklist.record_count), 0) as {{ dbt.type_bigint() }}) as record_count
    from checks
    left join worklist on checks.check_name = worklist.check_name
    group by 1, 2, 3
),

owner_level as (
    select 'owner' as level, check_name, owner_id, record_count
    from worklist
    where owner_id is not null
)

select
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as run_started_at,
    '{{ invocation_id }}' as run_invocation_id,
    {{ as_of_date() }} as as_of,
    level,
    check_name,
    owner_id,
    record_count
from org_level
union all
select
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp),
    '{{ invocation_id }}',
    {{ as_of_date() }},
    level,
    check_name,
    owner_id,
    record_count
from owner_level
