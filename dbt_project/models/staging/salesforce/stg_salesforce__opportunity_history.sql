{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'opportunityhistory') }}
),

typed as (
    select
        {{ clean_text('id') }} as opportunity_history_id,
        {{ clean_text('opportunityid') }} as opportunity_id,
        {{ clean_text('stagename') }} as stage_name,
        {{ parse_number('amount') }} as amount,
        {{ parse_number('probability') }} as probability,
        {{ clean_text('forecastcategory') }} as forecast_category,
        {{ parse_date('closedate') }} as close_date,
        {{ parse_timestamp('createddate') }} as created_at,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        coalesce({{ parse_bool('isdeleted') }}, false) as is_deleted,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'opportunity_history_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    opportunity_history_id, opportunity_id, stage_name, amount, probability, forecast_category,
    close_date, created_at, system_modstamp
from latest
where version_rank = 1 and opportunity_history_id is not null and not is_deleted
    and {{ not_quarantined('opportunityhistory', 'opportunity_history_id') }}
