with

tasks as (
    select owner_id as rep_id, {{ week_start('cast(created_at as date)') }} as week_start, lower(task_subtype) as subtype
    from {{ ref('stg_crm__tasks') }}
    where owner_id is not null and created_at is not null
),

meetings as (
    select rep_id, {{ week_start('cast(start_at as date)') }} as week_start, meeting_type, duration_minutes
    from {{ ref('int_rep_meetings') }}
),

opportunities as (
    select owner_id as rep_id, {{ week_start('cast(created_at as date)') }} as week_start
    from {{ ref('stg_crm__opportunities') }}
    where owner_id is not null and created_at is not null
),

task_counts as (
    select
        rep_id,
        week_start,
        count(case when subtype = 'call' then 1 end) as calls,
        count(case when subtype = 'email' then 1 end) as emails
    from tasks
    group by 1, 2
),

meeting_counts as (
    select
        rep_id,
        week_start,
        count(case when meeting_type = 'customer' then 1 end) as customer_meetings,
        coalesce(sum(case when meeting_type = 'customer' then duration_minutes end), 0) / 60.0
            as customer_meeting_hours,
        count(case when meeting_type = 'internal' then 1 end) as internal_meetings,
        count(case when meeting_type = 'training' then 1 end) as training_sessions
    from meetings
    group by 1, 2
),

opportunity_counts as (
    select rep_id, week_start, count(*) as opportunities_created
    from opportunities
    group by 1, 2
),

rep_weeks as (
    select rep_id, week_start from task_counts
    union
    select rep_id, week_start from meeting_counts
    union
    select rep_id, week_start from opportunity_counts
)

select
    rep_weeks.rep_id,
    rep_weeks.week_start,
    coalesce(task_counts.calls, 0) as calls,
    coalesce(task_counts.emails, 0) as emails,
    coalesce(meeting_counts.customer_meetings, 0) as customer_meetings,
    coalesce(meeting_counts.customer_meeting_hours, 0) as customer_meeting_hours,
    coalesce(meeting_counts.internal_meetings, 0) as internal_meetings,
    coalesce(meeting_counts.training_sessions, 0) as training_sessions,
    coalesce(opportunity_counts.opportunities_created, 0) as opportunities_created
from rep_weeks
left join task_counts
    on rep_weeks.rep_id = task_counts.rep_id and rep_weeks.week_start = task_counts.week_start
left join meeting_counts
    on rep_weeks.rep_id = meeting_counts.rep_id and rep_weeks.week_start = meeting_counts.week_start
left join opportunity_counts
    on rep_weeks.rep_id = opportunity_counts.rep_id and rep_weeks.week_start = opportunity_counts.week_start
