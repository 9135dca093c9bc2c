{{ config(enabled=crm_family() == 'hubspot') }}

{#- HubSpot keeps each tracked deal property's history separately. One row per moment any of them
    changed, holding every property's value as of that moment (the shape of Salesforce's
    OpportunityHistory). Written without IGNORE NULLS so that it runs on any warehouse. -#}
with

history as (
    select * from {{ source('hubspot', 'deal_property_history') }}
),

stages as (
    select {{ clean_text('id') }} as stage_id, {{ clean_text('label') }} as stage_label
    from {{ source('hubspot', 'deal_stages') }}
),

deals as (
    select opportunity_id from {{ ref('stg_hubspot__deals') }}
),

changes as (
    select
        {{ clean_text('deal_id') }} as opportunity_id,
        property,
        value,
        {{ parse_timestamp('timestamp') }} as changed_at
    from history
),

moments as (
    select
        opportunity_id,
        changed_at,
        max(case when property = 'dealstage' then value end) as stage_id,
        max(case when property = 'amount' then value end) as amount,
        max(case when property = 'closedate' then value end) as close_date,
        max(case when property = 'hs_deal_stage_probability' then value end) as probability,
        max(case when property = 'hs_manual_forecast_category' then value end) as forecast_category
    from changes
    where changed_at is not null and opportunity_id in (select opportunity_id from deals)
    group by opportunity_id, changed_at
),

{%- set tracked = ['stage_id', 'amount', 'close_date', 'probability', 'forecast_category'] %}

numbered as (
    select
        *,
        {%- for column in tracked %}
        count({{ column }}) over (
            partition by opportunity_id order by changed_at rows between unbounded preceding and current row
        ) as {{ column }}_group{% if not loop.last %},{% endif %}
        {%- endfor %}
    from moments
),

carried as (
    select
        opportunity_id,
        changed_at,
        {%- for column in tracked %}
        max({{ column }}) over (partition by opportunity_id, {{ column }}_group) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from numbered
)

select
    carried.opportunity_id || '-' || cast(cast(round({{ epoch_seconds('carried.changed_at') }} * 1000) as bigint) as varchar) as opportunity_history_id,
    carried.opportunity_id,
    coalesce(stages.stage_label, carried.stage_id) as stage_name,
    {{ parse_number('carried.amount') }} as amount,
    {{ parse_number('carried.probability') }} * 100 as probability,
    {{ hubspot_forecast_category('carried.forecast_category') }} as forecast_category,
    {{ parse_date('carried.close_date') }} as close_date,
    carried.changed_at as created_at,
    carried.changed_at as system_modstamp
from carried
left join stages on carried.stage_id = stages.stage_id
