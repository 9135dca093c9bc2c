with

stages as (
    select stage_name, stage_order, is_won
    from {{ ref('stg_crm__opportunity_stages') }}
    where not (is_closed and not is_won)
),

next_stages as (
    select
        stage_name,
        stage_order,
        lead(stage_order) over (order by stage_order) as next_stage_order
    from stages
),

progress as (
    select
        opportunity_id,
        {{ quarter_start('cast(created_at as date)') }} as cohort_quarter,
        furthest_stage_order
    from {{ ref('int_opportunity_stage_progress') }}
    where created_at is not null
),

durations as (
    select * from {{ ref('int_opportunity_stage_durations') }}
),

cohorts as (
    select distinct {{ quarter_start('cast(created_at as date)') }} as cohort_quarter
    from {{ ref('stg_crm__opportunities') }}
    where created_at is not null
),

reach as (
    select
        cohorts.cohort_quarter,
        next_stages.stage_name,
        next_stages.stage_order,
        next_stages.next_stage_order,
        count(progress.opportunity_id) as reached,
        count(case when progress.furthest_stage_order >= next_stages.next_stage_order then 1 end) as advanced
    from cohorts
    cross join next_stages
    left join progress
        on progress.cohort_quarter = cohorts.cohort_quarter
        and progress.furthest_stage_order >= next_stages.stage_order
    group by 1, 2, 3, 4
),

stage_days as (
    select
        progress.cohort_quarter,
        durations.stage_name,
        {{ percentile('durations.days_in_stage', 0.5) }} as median_days_in_stage
    from durations
    inner join progress on durations.opportunity_id = progress.opportunity_id
    group by 1, 2
)

select
    reach.cohort_quarter,
    reach.stage_name,
    reach.stage_order,
    reach.reached,
    case when reach.next_stage_order is not null then reach.advanced end as advanced,
    case
        when reach.next_stage_order is not null and reach.reached > 0
            then reach.advanced * 1.0 / reach.reached
    end as conversion_rate,
    stage_days.median_days_in_stage
from reach
left join stage_days
    on reach.cohort_quarter = stage_days.cohort_quarter
    and reach.stage_name = stage_days.stage_name
