{{ config(enabled=crm_family() == 'hubspot') }}

{#- HubSpot has no lead object: every contact is a lead from its creation, converted on the day it
    reached the opportunity (else the customer) lifecycle stage, into its company and its first
    deal. -#}
with

contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

deals as (
    select opportunity_id, first_contact_id, created_at from {{ ref('stg_hubspot__deals') }}
),

first_deals as (
    select first_contact_id as contact_id, opportunity_id
    from (
        select
            *,
            row_number() over (partition by first_contact_id order by created_at, opportunity_id) as deal_rank
        from deals
        where first_contact_id is not null
    ) as ranked
    where deal_rank = 1
),

leads as (
    select
        contacts.*,
        coalesce(contacts.became_opportunity_on, contacts.became_customer_on) as converted_date,
        first_deals.opportunity_id as first_opportunity_id
    from contacts
    left join first_deals on contacts.contact_id = first_deals.contact_id
)

select
    contact_id as lead_id,
    first_name,
    last_name,
    email,
    company,
    industry,
    lead_source,
    lead_status as status,
    owner_id,
    converted_date is not null as is_converted,
    converted_date,
    case when converted_date is not null then account_id end as converted_account_id,
    case when converted_date is not null then contact_id end as converted_contact_id,
    case when converted_date is not null then first_opportunity_id end as converted_opportunity_id,
    created_at,
    system_modstamp
from leads
