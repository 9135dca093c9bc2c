{{ config(enabled=crm_family() == 'hubspot') }}

with

source as (
    select * from {{ source('hubspot', 'deals') }}
),

stages as (
    select
        {{ clean_text('id') }} as stage_id,
        {{ clean_text('label') }} as stage_label,
        {{ parse_number('probability') }} * 100 as stage_probability
    from {{ source('hubspot', 'deal_stages') }}
),

typed as (
    select
        {{ clean_text('id') }} as opportunity_id,
        {{ clean_text('dealname') }} as opportunity_name,
        nullif({{ dbt.split_part('associations_companies', "','", 1) }}, '') as account_id,
        nullif({{ dbt.split_part('associations_contacts', "','", 1) }}, '') as first_contact_id,
        {{ clean_text('hubspot_owner_id') }} as owner_id,
        {{ clean_text('dealtype') }} as deal_type,
        {{ clean_text(var('hubspot_lead_source_property')) }} as lead_source,
        {{ clean_text('dealstage') }} as stage_id,
        {{ parse_number('amount') }} as amount,
        {{ parse_number('hs_deal_stage_probability') }} * 100 as probability,
        {{ hubspot_forecast_category('hs_manual_forecast_category') }} as manual_forecast_category,
        {{ parse_date('closedate') }} as close_date,
        coalesce({{ parse_bool('hs_is_closed') }}, false) as is_closed,
        coalesce({{ parse_bool('hs_is_closed_won') }}, false) as is_won,
        {{ parse_timestamp('createdate') }} as created_at,
        {{ parse_timestamp('hs_lastmodifieddate') }} as system_modstamp,
        coalesce({{ parse_bool('archived') }}, false) as is_archived,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'opportunity_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    latest.opportunity_id,
    latest.opportunity_name,
    latest.account_id,
    latest.first_contact_id,
    latest.owner_id,
    case latest.deal_type
        when 'newbusiness' then 'New Business'
        when 'existingbusiness' then 'Existing Business'
        else latest.deal_type
    end as opportunity_type,
    latest.lead_source,
    cast(null as varchar) as campaign_id,
    coalesce(stages.stage_label, latest.stage_id) as stage_name,
    latest.amount,
    latest.probability,
    coalesce(
        latest.manual_forecast_category,
        {{ stage_forecast_category('latest.is_won', 'latest.is_closed', 'stages.stage_probability') }}
    ) as forecast_category,
    latest.close_date,
    latest.is_closed,
    latest.is_won,
    latest.created_at,
    latest.system_modstamp
from latest
left join stages on latest.stage_id = stages.stage_id
where latest.version_rank = 1 and latest.opportunity_id is not null and not latest.is_archived
    and {{ not_quarantined('deals', 'latest.opportunity_id') }}
