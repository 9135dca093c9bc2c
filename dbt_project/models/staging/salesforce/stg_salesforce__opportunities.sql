{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'opportunity') }}
),

typed as (
    select
        {{ clean_text('id') }} as opportunity_id,
        {{ clean_text('name') }} as opportunity_name,
        {{ clean_text('accountid') }} as account_id,
        {{ clean_text('ownerid') }} as owner_id,
        {{ clean_text('type') }} as opportunity_type,
        {{ clean_text('leadsource') }} as lead_source,
        {{ clean_text('campaignid') }} as campaign_id,
        {{ clean_text('stagename') }} as stage_name,
        {{ parse_number('amount') }} as amount,
        {{ parse_number('probability') }} as probability,
        {{ clean_text('forecastcategoryname') }} as forecast_category,
        {{ parse_date('closedate') }} as close_date,
        coalesce({{ parse_bool('isclosed') }}, false) as is_closed,
        coalesce({{ parse_bool('iswon') }}, false) as is_won,
        {{ parse_timestamp('createddate') }} as created_at,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        coalesce({{ parse_bool('isdeleted') }}, false) as is_deleted,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'opportunity_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    opportunity_id, opportunity_name, account_id, owner_id, opportunity_type, lead_source,
    campaign_id, stage_name, amount, probability, forecast_category, close_date, is_closed,
    is_won, created_at, system_modstamp
from latest
where version_rank = 1 and opportunity_id is not null and not is_deleted
    and {{ not_quarantined('opportunity', 'opportunity_id') }}
