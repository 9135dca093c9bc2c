{#- Meetings per rep: one row per rep × meeting occurrence the rep organised or accepted,
    not cancelled and not all-day, classified as training, customer or internal. -#}
with

reps as (
    select rep_id, email from {{ ref('stg_crm__users') }} where email is not null
),

events as (
    select * from {{ ref('stg_calendar__events') }}
    where not is_cancelled and not is_all_day
),

attendees as (
    select * from {{ ref('stg_calendar__attendees') }}
),

company_domains as (
    {{ company_domains_select() }}
),

external_meetings as (
    select distinct attendees.event_occurrence_id
    from attendees
    where attendees.email_domain not in (select email_domain from company_domains)
),

participations as (
    select reps.rep_id, events.event_occurrence_id
    from events
    inner join reps on events.organizer_email = reps.email
    union
    select reps.rep_id, attendees.event_occurrence_id
    from attendees
    inner join reps on attendees.email = reps.email
    where attendees.partstat = 'ACCEPTED'
)

select
    participations.rep_id,
    events.event_occurrence_id,
    events.start_at,
    events.end_at,
    events.duration_minutes,
    case
        when events.is_training then 'training'
        when external_meetings.event_occurrence_id is not null then 'customer'
        else 'internal'
    end as meeting_type
from participations
inner join events on participations.event_occurrence_id = events.event_occurrence_id
left join external_meetings on events.event_occurrence_id = external_meetings.event_occurrence_id
