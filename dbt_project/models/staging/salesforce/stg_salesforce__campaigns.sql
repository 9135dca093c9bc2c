{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'campaign') }}
),

typed as (
    select
        {{ clean_text('id') }} as campaign_id,
        {{ clean_text('name') }} as campaign_name,
        {{ clean_text('type') }} as campaign_type,
        {{ clean_text('status') }} as status,
        {{ parse_date('startdate') }} as start_date,
        {{ parse_date('enddate') }} as end_date,
        {{ parse_number('budgetedcost') }} as budgeted_cost,
        {{ parse_number('actualcost') }} as actual_cost,
        {{ parse_timestamp('createddate') }} as created_at,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        coalesce({{ parse_bool('isdeleted') }}, false) as is_deleted,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'campaign_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    campaign_id, campaign_name, campaign_type, status, start_date, end_date, budgeted_cost,
    actual_cost, created_at, system_modstamp
from latest
where version_rank = 1 and campaign_id is not null and not is_deleted
    and {{ not_quarantined('campaign', 'campaign_id') }}
