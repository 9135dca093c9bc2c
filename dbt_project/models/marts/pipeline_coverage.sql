with

as_of as (
    select
        {{ as_of_date() }} as as_of_date,
        {{ quarter_start(as_of_date()) }} as current_quarter_start
),

quarters as (
    select current_quarter_start as quarter_start from as_of
    union all
    select {{ add_to_date('month', 3, 'current_quarter_start') }} from as_of
),

opportunities as (
    select *, {{ quarter_start('close_date') }} as close_quarter_start
    from {{ ref('stg_crm__opportunities') }}
    where owner_id is not null and close_date is not null
),

quotas as (
    select quota_owner_id as rep_id, {{ quarter_start('start_date') }} as quarter_start, sum(quota_amount) as quota_amount
    from {{ ref('stg_crm__forecasting_quotas') }}
    where quota_owner_id is not null and start_date is not null
    group by 1, 2
),

bookings as (
    select owner_id as rep_id, close_quarter_start as quarter_start, coalesce(sum(amount), 0) as bookings_to_date
    from opportunities
    cross join as_of
    where is_won and close_date <= as_of.as_of_date
    group by 1, 2
),

open_pipeline as (
    select
        owner_id as rep_id,
        close_quarter_start as quarter_start,
        count(*) as open_opportunities,
        coalesce(sum(amount), 0) as open_pipeline,
        coalesce(sum(amount * probability / 100.0), 0) as weighted_pipeline,
        coalesce(sum(case when forecast_category = 'Commit' then amount end), 0) as commit_amount,
        coalesce(sum(case when forecast_category in ('Commit', 'Best Case') then amount end), 0)
            as best_case_amount
    from opportunities
    where not is_closed
    group by 1, 2
),

trailing_performance as (
    select
        opportunities.owner_id as rep_id,
        count(case when opportunities.is_won then 1 end) * 1.0 / count(*) as trailing_win_rate,
        avg(case when opportunities.is_won then opportunities.amount end) as trailing_avg_won_amount,
        avg(
            case when opportunities.is_won
                then {{ days_between('cast(opportunities.created_at as date)', 'opportunities.close_date') }}
            end
        ) as trailing_avg_sales_cycle_days
    from opportunities
    cross join as_of
    where opportunities.is_closed
        and opportunities.close_date >= {{ add_to_date('month', -12, 'as_of.current_quarter_start') }}
        and opportunities.close_date < as_of.current_quarter_start
    group by 1
),

rep_quarters as (
    select rep_id, quarter_start from quotas
    union
    select rep_id, quarter_start from bookings
    union
    select rep_id, quarter_start from open_pipeline
),

coverage as (
    select
        rep_quarters.rep_id,
        rep_quarters.quarter_start,
        quotas.quota_amount,
        coalesce(bookings.bookings_to_date, 0) as bookings_to_date,
        coalesce(open_pipeline.open_opportunities, 0) as open_opportunities,
        coalesce(open_pipeline.open_pipeline, 0) as open_pipeline,
        coalesce(open_pipeline.weighted_pipeline, 0) as weighted_pipeline,
        coalesce(open_pipeline.commit_amount, 0) as commit_amount,
        coalesce(open_pipeline.best_case_amount, 0) as best_case_amount,
        trailing_performance.trailing_win_rate,
        trailing_performance.trailing_avg_won_amount,
        trailing_performance.trailing_avg_sales_cycle_days
    from rep_quarters
    inner join quarters on rep_quarters.quarter_start = quarters.quarter_start
    left join quotas
        on rep_quarters.rep_id = quotas.rep_id and rep_quarters.quarter_start = quotas.quarter_start
    left join bookings
        on rep_quarters.rep_id = bookings.rep_id and rep_quarters.quarter_start = bookings.quarter_start
    left join open_pipeline
        on rep_quarters.rep_id = open_pipeline.rep_id and rep_quarters.quarter_start = open_pipeline.quarter_start
    left join trailing_performance on rep_quarters.rep_id = trailing_performance.rep_id
)

select
    rep_id,
    quarter_start,
    quota_amount,
    bookings_to_date,
    case when quota_amount is not null then greatest(quota_amount - bookings_to_date, 0) end as remaining_quota,
    open_opportunities,
    open_pipeline,
    weighted_pipeline,
    commit_amount,
    best_case_amount,
    case when quota_amount - bookings_to_date > 0
        then open_pipeline / (quota_amount - bookings_to_date)
    end as coverage_ratio,
    trailing_win_rate,
    trailing_avg_won_amount,
    trailing_avg_sales_cycle_days,
    case when trailing_avg_sales_cycle_days > 0
        then open_opportunities * trailing_win_rate * trailing_avg_won_amount / trailing_avg_sales_cycle_days
    end as pipeline_velocity_per_day
from coverage
