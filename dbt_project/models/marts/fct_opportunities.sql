with

opportunities as (
    select * from {{ ref('stg_crm__opportunities') }}
),

stages as (
    select stage_name, stage_order from {{ ref('stg_crm__opportunity_stages') }}
),

source_leads as (
    select converted_opportunity_id as opportunity_id, lead_id
    from (
        select
            converted_opportunity_id,
            lead_id,
            row_number() over (partition by converted_opportunity_id order by created_at, lead_id) as lead_rank
        from {{ ref('stg_crm__leads') }}
        where converted_opportunity_id is not null
    ) as ranked
    where lead_rank = 1
),

as_of as (
    select {{ as_of_date() }} as as_of_date
)

select
    opportunities.opportunity_id,
    opportunities.opportunity_name,
    opportunities.account_id,
    opportunities.owner_id,
    opportunities.campaign_id,
    source_leads.lead_id as source_lead_id,
    opportunities.opportunity_type,
    opportunities.lead_source,
    opportunities.stage_name,
    stages.stage_order,
    opportunities.forecast_category,
    opportunities.amount,
    opportunities.probability,
    opportunities.close_date,
    opportunities.created_at,
    opportunities.is_closed,
    opportunities.is_won,
    not opportunities.is_closed as is_open,
    case
        when opportunities.is_closed
            then {{ days_between('cast(opportunities.created_at as date)', 'opportunities.close_date') }}
        else {{ days_between('cast(opportunities.created_at as date)', 'as_of.as_of_date') }}
    end as days_open
from opportunities
cross join as_of
left join stages on opportunities.stage_name = stages.stage_name
left join source_leads on opportunities.opportunity_id = source_leads.opportunity_id
