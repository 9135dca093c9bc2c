with

reps as (
    select rep_id, hire_date from {{ ref('stg_crm__users') }} where hire_date is not null
),

as_of as (
    select {{ as_of_date() }} as as_of_date
),

meetings as (
    select * from {{ ref('int_rep_meetings') }}
),

opportunities as (
    select owner_id as rep_id, created_at, close_date, is_won
    from {{ ref('stg_crm__opportunities') }}
    where owner_id is not null
),

quarterly_attainment as (
    select rep_id, period_start, attainment
    from {{ ref('quota_attainment') }}
    where period_type = 'quarter'
),

trainings as (
    select reps.rep_id, count(*) as trainings_attended_90d
    from reps
    inner join meetings on reps.rep_id = meetings.rep_id
    where meetings.meeting_type = 'training'
        and cast(meetings.start_at as date) >= reps.hire_date
        and cast(meetings.start_at as date) < {{ add_to_date('day', 90, 'reps.hire_date') }}
    group by 1
),

first_customer_meetings as (
    select rep_id, min(start_at) as first_customer_meeting_at
    from meetings
    where meeting_type = 'customer'
    group by 1
),

first_opportunities as (
    select
        rep_id,
        min(created_at) as first_opportunity_at,
        min(case when is_won then close_date end) as first_won_at
    from opportunities
    group by 1
),

first_full_quarters as (
    select
        rep_id,
        {#- the quarter holding the day before hire starts before it, so the next one is the first full one -#}
        {{ add_to_date('month', 3, quarter_start(add_to_date('day', -1, 'hire_date'))) }}
            as first_full_quarter_start
    from reps
),

progress as (
    select
        reps.rep_id,
        reps.hire_date,
        {{ days_between('reps.hire_date', 'as_of.as_of_date') }} as tenure_days,
        coalesce(trainings.trainings_attended_90d, 0) as trainings_attended_90d,
        first_customer_meetings.first_customer_meeting_at,
        first_opportunities.first_opportunity_at,
        first_opportunities.first_won_at,
        {{ days_between('reps.hire_date', 'first_opportunities.first_won_at') }} as days_to_first_win,
        case
            when {{ add_to_date('month', 3, 'first_full_quarters.first_full_quarter_start') }} <= as_of.as_of_date
                then quarterly_attainment.attainment
        end as first_full_quarter_attainment
    from reps
    cross join as_of
    left join trainings on reps.rep_id = trainings.rep_id
    left join first_customer_meetings on reps.rep_id = first_customer_meetings.rep_id
    left join first_opportunities on reps.rep_id = first_opportunities.rep_id
    left join first_full_quarters on reps.rep_id = first_full_quarters.rep_id
    left join quarterly_attainment
        on reps.rep_id = quarterly_attainment.rep_id
        and first_full_quarters.first_full_quarter_start = quarterly_attainment.period_start
)

select
    *,
    case
        when tenure_days < 90 then 'ramping'
        when tenure_days > 180 and first_won_at is null then 'behind'
        else 'ramped'
    end as ramp_status
from progress
