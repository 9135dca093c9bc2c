{{ config(enabled=crm_family() == 'hubspot') }}

with

source as (
    select * from {{ source('hubspot', 'companies') }}
),

typed as (
    select
        {{ clean_text('id') }} as account_id,
        {{ clean_text('name') }} as account_name,
        {{ clean_text('industry') }} as industry,
        {{ parse_integer('numberofemployees') }} as number_of_employees,
        {{ parse_number('annualrevenue') }} as annual_revenue,
        {{ clean_text('country') }} as billing_country,
        {{ clean_text('hubspot_owner_id') }} as owner_id,
        {{ parse_timestamp('createdate') }} as created_at,
        {{ parse_timestamp('hs_lastmodifieddate') }} as system_modstamp,
        coalesce({{ parse_bool('archived') }}, false) as is_archived,
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
where version_rank = 1 and account_id is not null and not is_archived
    and {{ not_quarantined('companies', 'account_id') }}
