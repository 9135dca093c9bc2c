{#- One row per attendee of a meeting occurrence, taking the attendee's own mailbox copy first
    (it holds their reply), then the organizer's copy, then the most recent copy. With Salesforce,
    a CRM Event no mailbox holds (stg_calendar__crm_events) has its Who's email as its attendee.

    Each attendee is listed in every mailbox's copy of the meeting (13M rows for 1.3M attendees at
    profile L), too many for a window function over attendee rows: DuckDB cannot spill its memory.
    So the copies are ordered once per occurrence (one row per mailbox file), and each attendee
    takes the copy with the lowest preference by a grouped minimum, which DuckDB can spill. -#}
with

attendees as (
    select * from {{ source('calendar', 'attendees') }}
    where email is not null
),

occurrences as (
    select source_file, uid, occurrence_start, mailbox, organizer_email, sequence, dtstamp
    from {{ source('calendar', 'occurrences') }}
),

occurrence_copies as (
    select
        source_file,
        uid,
        occurrence_start,
        lower(mailbox) as mailbox,
        row_number() over (
            partition by uid, occurrence_start
            order by
                case when lower(mailbox) = organizer_email then 0 else 1 end,
                sequence desc nulls last,
                dtstamp desc nulls last,
                source_file
        ) as copy_order
    from occurrences
),

attendee_copies as (
    select
        attendees.uid,
        attendees.occurrence_start,
        attendees.email,
        upper(coalesce(attendees.partstat, 'NEEDS-ACTION')) as partstat,
        upper(coalesce(attendees.role, 'REQ-PARTICIPANT')) as role,
        attendees.common_name,
        -- the attendee's own copies before any other; within each group, the occurrence's order
        case when occurrence_copies.mailbox = attendees.email then 0 else 1 end * 1000000000
            + occurrence_copies.copy_order as preference
    from attendees
    inner join occurrence_copies
        on attendees.source_file = occurrence_copies.source_file
        and attendees.uid = occurrence_copies.uid
        and attendees.occurrence_start = occurrence_copies.occurrence_start
),

preferred as (
    select uid, occurrence_start, email, min(preference) as preference
    from attendee_copies
    group by uid, occurrence_start, email
),

chosen as (
    -- min() only decides between rows of the same copy, which the parser never writes twice
    select
        attendee_copies.uid,
        attendee_copies.occurrence_start,
        attendee_copies.email,
        min(attendee_copies.partstat) as partstat,
        min(attendee_copies.role) as role,
        min(attendee_copies.common_name) as common_name
    from attendee_copies
    inner join preferred
        on attendee_copies.uid = preferred.uid
        and attendee_copies.occurrence_start = preferred.occurrence_start
        and attendee_copies.email = preferred.email
        and attendee_copies.preference = preferred.preference
    group by attendee_copies.uid, attendee_copies.occurrence_start, attendee_copies.email
)

select
    {{ dbt.hash("uid || '|' || cast(occurrence_start as varchar)") }} as event_occurrence_id,
    {{ dbt.hash("uid || '|' || cast(occurrence_start as varchar) || '|' || email") }} as event_attendee_id,
    uid,
    occurrence_start as start_at,
    lower(email) as email,
    {{ dbt.split_part('lower(email)', "'@'", 2) }} as email_domain,
    partstat,
    role,
    common_name
from chosen
{%- if crm_family() == 'salesforce' %}

union all

select
    event_occurrence_id,
    {{ dbt.hash("uid || '|' || cast(start_at as varchar) || '|' || who_email") }} as event_attendee_id,
    uid,
    start_at,
    who_email as email,
    {{ dbt.split_part('who_email', "'@'", 2) }} as email_domain,
    cast('NEEDS-ACTION' as {{ dbt.type_string() }}) as partstat,
    cast('REQ-PARTICIPANT' as {{ dbt.type_string() }}) as role,
    cast(null as {{ dbt.type_string() }}) as common_name
from {{ ref('stg_calendar__crm_events') }}
where who_email is not null
{%- endif %}
