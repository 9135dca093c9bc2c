with

leads as (
    select
        lead_id,
        {{ month_start('cast(created_at as date)') }} as cohort_month,
        coalesce(lead_source, 'Unknown') as lead_source,
        is_converted,
        converted_opportunity_id
    from {{ ref('stg_crm__leads') }}
    where created_at is not null
),

opportunities as (
    select opportunity_id, is_closed, is_won, amount from {{ ref('stg_crm__opportunities') }}
),

lead_counts as (
    select
        cohort_month,
        lead_source,
        count(*) as leads,
        count(case when is_converted then 1 end) as converted_leads
    from leads
    group by 1, 2
),

cohort_opportunities as (
    select distinct leads.cohort_month, leads.lead_source, opportunities.*
    from leads
    inner join opportunities on leads.converted_opportunity_id = opportunities.opportunity_id
),

opportunity_counts as (
    select
        cohort_month,
        lead_source,
        count(*) as opportunities,
        count(case when is_closed then 1 end) as closed_opportunities,
        count(case when is_won then 1 end) as won_opportunities,
        coalesce(sum(case when is_won then amount end), 0) as won_amount
    from cohort_opportunities
    group by 1, 2
)

select
    lead_counts.cohort_month,
    lead_counts.lead_source,
    lead_counts.leads,
    lead_counts.converted_leads,
    coalesce(opportunity_counts.opportunities, 0) as opportunities,
    coalesce(opportunity_counts.won_opportunities, 0) as won_opportunities,
    coalesce(opportunity_counts.won_amount, 0) as won_amount,
    coalesce(opportunity_counts.opportunities, 0) * 1.0 / lead_counts.leads as lead_to_opportunity_rate,
    case
        when opportunity_counts.closed_opportunities > 0
            then opportunity_counts.won_opportunities * 1.0 / opportunity_counts.closed_opportunities
    end as win_rate,
    coalesce(opportunity_counts.won_opportunities, 0) * 1.0 / lead_counts.leads as lead_to_win_rate
from lead_counts
left join opportunity_counts
    on lead_counts.cohort_month = opportunity_counts.cohort_month
    and lead_counts.lead_source = opportunity_counts.lead_source
