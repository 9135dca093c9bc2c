{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'lead') }}
),

typed as (
    select
        {{ clean_text('id') }} as lead_id,
        {{ clean_text('firstname') }} as first_name,
        {{ clean_text('lastname') }} as last_name,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('company') }} as company,
        {{ clean_text('industry') }} as industry,
        {{ clean_text('leadsource') }} as lead_source,
        {{ clean_text('status') }} as status,
        {{ clean_text('ownerid') }} as owner_id,
        coalesce({{ parse_bool('isconverted') }}, false) as is_converted,
        {{ parse_date('converteddate') }} as converted_date,
        {{ clean_text('convertedaccountid') }} as converted_account_id,
        {{ clean_text('convertedcontactid') }} as converted_contact_id,
        {{ clean_text('convertedopportunityid') }} as converted_opportunity_id,
        {{ parse_timestamp('createddate') }} as created_at,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        coalesce({{ parse_bool('isdeleted') }}, false) as is_deleted,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'lead_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    lead_id, first_name, last_name, email, company, industry, lead_source, status, owner_id,
    is_converted, converted_date, converted_account_id, converted_contact_id,
    converted_opportunity_id, created_at, system_modstamp
from latest
where version_rank = 1 and lead_id is not null and not is_deleted
    and {{ not_quarantined('lead', 'lead_id') }}
