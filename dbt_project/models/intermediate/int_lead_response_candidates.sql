{#- Every touch that counts as a response to a lead: a call or email task on the lead, or a
    non-cancelled meeting with the lead's email among the attendees (by booking time), at or
    after the lead was created. -#}
with

leads as (
    select lead_id, email, created_at from {{ ref('stg_crm__leads') }}
),

tasks as (
    select who_id, created_at, lower(task_subtype) as channel
    from {{ ref('stg_crm__tasks') }}
    where lower(task_subtype) in ('call', 'email') and who_id is not null
),

meeting_attendees as (
    select attendees.email, events.booked_at
    from {{ ref('stg_calendar__attendees') }} as attendees
    inner join {{ ref('stg_calendar__events') }} as events
        on attendees.event_occurrence_id = events.event_occurrence_id
    where not events.is_cancelled
),

task_responses as (
    select leads.lead_id, tasks.created_at as responded_at, tasks.channel as response_channel
    from leads
    inner join tasks on tasks.who_id = leads.lead_id
    where tasks.created_at >= leads.created_at
),

meeting_responses as (
    select leads.lead_id, meeting_attendees.booked_at as responded_at, 'meeting' as response_channel
    from leads
    inner join meeting_attendees on meeting_attendees.email = leads.email
    where meeting_attendees.booked_at >= leads.created_at
)

select * from task_responses
union all
select * from meeting_responses
