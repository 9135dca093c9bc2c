with

campaigns as (
    select campaign_id, campaign_name, actual_cost from {{ ref('stg_crm__campaigns') }}
),

opportunities as (
    select campaign_id, is_won, amount
    from {{ ref('stg_crm__opportunities') }}
    where campaign_id is not null
),

campaign_opportunities as (
    select
        campaign_id,
        count(*) as opportunities,
        count(case when is_won then 1 end) as won_deals,
        coalesce(sum(case when is_won then amount end), 0) as won_amount
    from opportunities
    group by 1
)

select
    campaigns.campaign_id,
    campaigns.campaign_name,
    campaigns.actual_cost,
    coalesce(campaign_opportunities.opportunities, 0) as opportunities,
    coalesce(campaign_opportunities.won_deals, 0) as won_deals,
    coalesce(campaign_opportunities.won_amount, 0) as won_amount,
    case when campaign_opportunities.opportunities > 0
        then campaigns.actual_cost / campaign_opportunities.opportunities
    end as cost_per_opportunity,
    case when campaign_opportunities.won_deals > 0
        then campaigns.actual_cost / campaign_opportunities.won_deals
    end as cost_per_sale,
    case when campaigns.actual_cost > 0
        then (coalesce(campaign_opportunities.won_amount, 0) - campaigns.actual_cost) / campaigns.actual_cost
    end as roi
from campaigns
left join campaign_opportunities on campaigns.campaign_id = campaign_opportunities.campaign_id
