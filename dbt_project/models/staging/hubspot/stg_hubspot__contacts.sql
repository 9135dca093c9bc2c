{{ config(enabled=crm_family() == 'hubspot') }}

with

source as (
    select * from {{ source('hubspot', 'contacts') }}
),

typed as (
    select
        {{ clean_text('id') }} as contact_id,
        {{ clean_text('associatedcompanyid') }} as account_id,
        {{ clean_text('firstname') }} as first_name,
        {{ clean_text('lastname') }} as last_name,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('jobtitle') }} as title,
        {{ clean_text('company') }} as company,
        {{ clean_text('industry') }} as industry,
        {{ clean_text(var('hubspot_lead_source_property')) }} as lead_source,
        {{ clean_text('hs_lead_status') }} as lead_status,
        {{ clean_text('lifecyclestage') }} as lifecycle_stage,
        {{ parse_date('hs_lifecyclestage_opportunity_date') }} as became_opportunity_on,
        {{ parse_date('hs_lifecyclestage_customer_date') }} as became_customer_on,
        {{ clean_text('hubspot_owner_id') }} as owner_id,
        {{ parse_timestamp('createdate') }} as created_at,
        {{ parse_timestamp('lastmodifieddate') }} as system_modstamp,
        coalesce({{ parse_bool('archived') }}, false) as is_archived,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'contact_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    contact_id, account_id, first_name, last_name, email, title, company, industry, lead_source,
    lead_status, lifecycle_stage, became_opportunity_on, became_customer_on, owner_id, created_at,
    system_modstamp
from latest
where version_rank = 1 and contact_id is not null and not is_archived
    and {{ not_quarantined('contacts', 'contact_id') }}
