{#- Every CRM record that a coordinator should fix, one row per record x check, with its owner.
    Definitions in docs/data-quality.md (the coordinators' worklist). -#}
with

as_of as (
    select {{ as_of_date() }} as as_of_date
),

opportunities as (
    select * from {{ ref('stg_crm__opportunities') }}
),

leads as (
    select * from {{ ref('stg_crm__leads') }}
),

contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

lead_responses as (
    select lead_id, first_response_at from {{ ref('lead_response_times') }}
),

stages as (
    select stage_name from {{ ref('stg_crm__opportunity_stages') }}
),

duplicate_lead_emails as (
    select email from leads where email is not null group by email having count(*) > 1
),

duplicate_contact_emails as (
    select email from contacts where email is not null group by email having count(*) > 1
)

select 'open_opportunity_past_close_date' as check_name, 'opportunity' as source_table,
    opportunity_id as record_id, owner_id
from opportunities cross join as_of
where not is_closed and close_date < as_of.as_of_date

union all
select 'opportunity_missing_amount', 'opportunity', opportunity_id, owner_id
from opportunities
where amount is null

union all
select 'unknown_stage', 'opportunity', opportunity_id, owner_id
from opportunities
where stage_name is null
    or not exists (select 1 from stages where stages.stage_name = opportunities.stage_name)

union all
select 'lead_without_activity_7d', 'lead', leads.lead_id, leads.owner_id
from leads
cross join as_of
left join lead_responses on leads.lead_id = lead_responses.lead_id
where not leads.is_converted
    and leads.created_at <= ({{ dbt.dateadd('day', -7, 'cast(as_of.as_of_date as ' ~ dbt.type_timestamp() ~ ')') }})
    and (
        lead_responses.first_response_at is null
        or lead_responses.first_response_at > ({{ dbt.dateadd('day', 7, 'leads.created_at') }})
    )

union all
select 'duplicate_lead_email', 'lead', lead_id, owner_id
from leads
where email in (select email from duplicate_lead_emails)

union all
select 'duplicate_contact_email', 'contact', contact_id, owner_id
from contacts
where email in (select email from duplicate_contact_emails)

union all
select 'account_missing_industry', 'account', account_id, owner_id
from accounts
where industry is null

union all
select 'contact_missing_email', 'contact', contact_id, owner_id
from contacts
where email is null

union all
select 'lead_without_owner', 'lead', lead_id, owner_id
from leads
where owner_id is null
