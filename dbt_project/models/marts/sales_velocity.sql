with

closed_opportunities as (
    select
        owner_id as rep_id,
        {{ quarter_start('close_date') }} as quarter_start,
        is_won,
        amount,
        {{ days_between('cast(created_at as date)', 'close_date') }} as sales_cycle_days
    from {{ ref('stg_crm__opportunities') }}
    where is_closed and close_date is not null and owner_id is not null
)

select
    rep_id,
    quarter_start,
    count(case when is_won then 1 end) as won_deals,
    count(case when not is_won then 1 end) as lost_deals,
    count(case when is_won then 1 end) * 1.0 / count(*) as win_rate,
    coalesce(sum(case when is_won then amount end), 0) as won_amount,
    avg(case when is_won then amount end) as avg_deal_size,
    avg(case when is_won then sales_cycle_days end) as avg_sales_cycle_days
from closed_opportunities
group by 1, 2
