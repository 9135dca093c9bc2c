{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'account') }}
),

typed as (
    select
        {{ clean_text('id') }} as account_id,
        {{ clean_text('name') }} as account_name,
        {{ clean_text('industry') }} as industry,
        {{ parse_integer('numberofemployees') }} as number_of_employees,
        {{ parse_number('annualrevenue') }} as annual_revenue,
        {{ clean_text('billingcountry') }} as billing_country,
        {{ clean_text('ownerid') }} as owner_id,
        {{ parse_timestamp('createddate') }} as created_at,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        coalesce({{ parse_bool('isdeleted') }}, false) as is_deleted,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'account_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    account_id, account_name, industry, number_of_employees, annual_revenue, billing_country,
    owner_id, created_at, system_modstamp
from latest
where version_rank = 1 and account_id is not null and not is_deleted
    and {{ not_quarantined('account', 'account_id') }}
