{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'forecastingquota') }}
),

typed as (
    select
        {{ clean_text('id') }} as quota_id,
        {{ clean_text('quotaownerid') }} as quota_owner_id,
        {{ parse_date('startdate') }} as start_date,
        {{ parse_number('quotaamount') }} as quota_amount,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'quota_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select quota_id, quota_owner_id, start_date, quota_amount, system_modstamp
from latest
where version_rank = 1 and quota_id is not null
    and {{ not_quarantined('forecastingquota', 'quota_id') }}
