{{ config(enabled=crm_family() == 'salesforce') }}

{#- Meetings logged in the CRM (Salesforce Event) that no mailbox holds, as calendar meetings:
    stg_calendar__events and stg_calendar__attendees add them to the mailbox occurrences, so every
    mart counting meetings counts them, and an org without calendar exports still has meetings.

    An Event is the same meeting as a mailbox occurrence (and is left out here) when an occurrence
    in the Event owner's mailbox (the mailbox named by the owner's email) starts at the Event's
    start and the Event's Who (the lead's or contact's email) is among the occurrence's attendees
    or is its organizer, or the Event has no Who with an email (no WhoId, or a Who without an email,
    which no mailbox could list). A cancelled occurrence matches too: the mailbox has the last word.

    An Event left here is a meeting organised by its owner, with its Who as the one attendee
    (participation unknown: NEEDS-ACTION); its Type stands for CATEGORIES (training when it
    contains Training or Onboarding); it was booked at its start (the contract reads no
    CreatedDate for Events). -#}
with

events as (
    select * from {{ ref('stg_salesforce__events') }}
    where start_at is not null
),

owners as (
    select rep_id, email from {{ ref('stg_crm__users') }}
    where email is not null
),

who_emails as (
    select who_id, min(email) as email
    from (
        select lead_id as who_id, email from {{ ref('stg_crm__leads') }} where email is not null
        union all
        select contact_id as who_id, email from {{ ref('stg_crm__contacts') }} where email is not null
    ) as people
    group by who_id
),

crm_events as (
    select
        events.event_id,
        'salesforce-event:' || events.event_id as uid,
        events.start_at,
        events.end_at,
        events.is_all_day,
        events.subject,
        events.event_type,
        lower(owners.email) as owner_email,
        lower(who_emails.email) as who_email
    from events
    left join owners on events.owner_id = owners.rep_id
    left join who_emails on events.who_id = who_emails.who_id
),

{#- Copies of mailbox occurrences in an Event owner's mailbox, starting at the Event's start. -#}
candidates as (
    select
        crm_events.event_id,
        crm_events.who_email,
        occurrences.uid,
        occurrences.occurrence_start,
        occurrences.organizer_email
    from crm_events
    inner join {{ source('calendar', 'occurrences') }} as occurrences
        on lower(occurrences.mailbox) = crm_events.owner_email
        and occurrences.occurrence_start = crm_events.start_at
    where occurrences.uid is not null
),

matched as (
    select event_id
    from candidates
    where who_email is null or organizer_email = who_email
    union
    select candidates.event_id
    from candidates
    inner join {{ source('calendar', 'attendees') }} as attendees
        on attendees.uid = candidates.uid
        and attendees.occurrence_start = candidates.occurrence_start
        and attendees.email = candidates.who_email
)

select
    {{ dbt.hash("uid || '|' || cast(start_at as varchar)") }} as event_occurrence_id,
    cast(event_id as {{ dbt.type_string() }}) as event_id,
    cast(uid as {{ dbt.type_string() }}) as uid,
    start_at,
    end_at,
    is_all_day,
    false as is_recurring,
    cast('CONFIRMED' as {{ dbt.type_string() }}) as status,
    false as is_cancelled,
    cast(subject as {{ dbt.type_string() }}) as summary,
    cast(owner_email as {{ dbt.type_string() }}) as organizer_email,
    cast(event_type as {{ dbt.type_string() }}) as categories,
    (lower(coalesce(event_type, '')) like '%training%' or lower(coalesce(event_type, '')) like '%onboarding%')
        as is_training,
    cast(null as {{ dbt.type_timestamp() }}) as created_at,
    start_at as booked_at,
    ({{ epoch_seconds('end_at') }} - {{ epoch_seconds('start_at') }}) / 60.0 as duration_minutes,
    cast(who_email as {{ dbt.type_string() }}) as who_email
from crm_events
where event_id not in (select event_id from matched)
