with

quotas as (
    select quota_owner_id as rep_id, start_date, quota_amount
    from {{ ref('stg_crm__forecasting_quotas') }}
    where quota_owner_id is not null and start_date is not null
),

won_opportunities as (
    select owner_id as rep_id, close_date, amount
    from {{ ref('stg_crm__opportunities') }}
    where is_won and close_date is not null and owner_id is not null
),

quota_by_period as (
    select rep_id, 'month' as period_type, {{ month_start('start_date') }} as period_start,
        sum(quota_amount) as quota_amount
    from quotas
    group by 1, 2, 3
    union all
    select rep_id, 'quarter' as period_type, {{ quarter_start('start_date') }} as period_start,
        sum(quota_amount) as quota_amount
    from quotas
    group by 1, 2, 3
),

bookings_by_period as (
    select rep_id, 'month' as period_type, {{ month_start('close_date') }} as period_start,
        coalesce(sum(amount), 0) as bookings_amount, count(*) as won_deals
    from won_opportunities
    group by 1, 2, 3
    union all
    select rep_id, 'quarter' as period_type, {{ quarter_start('close_date') }} as period_start,
        coalesce(sum(amount), 0) as bookings_amount, count(*) as won_deals
    from won_opportunities
    group by 1, 2, 3
),

rep_periods as (
    select rep_id, period_type, period_start from quota_by_period
    union
    select rep_id, period_type, period_start from bookings_by_period
)

select
    rep_periods.rep_id,
    rep_periods.period_type,
    rep_periods.period_start,
    quota_by_period.quota_amount,
    coalesce(bookings_by_period.bookings_amount, 0) as bookings_amount,
    coalesce(bookings_by_period.won_deals, 0) as won_deals,
    case
        when quota_by_period.quota_amount > 0
            then coalesce(bookings_by_period.bookings_amount, 0) / quota_by_period.quota_amount
    end as attainment
from rep_periods
left join quota_by_period
    on rep_periods.rep_id = quota_by_period.rep_id
    and rep_periods.period_type = quota_by_period.period_type
    and rep_periods.period_start = quota_by_period.period_start
left join bookings_by_period
    on rep_periods.rep_id = bookings_by_period.rep_id
    and rep_periods.period_type = bookings_by_period.period_type
    and rep_periods.period_start = bookings_by_period.period_start
