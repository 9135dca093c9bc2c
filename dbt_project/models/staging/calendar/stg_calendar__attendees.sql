{#- One row per attendee of a meeting occurrence, taking the attendee's own mailbox copy first
    (it holds their reply), then the organizer's copy, then the most recent copy. -#}
with

attendees as (
    select * from {{ source('calendar', 'attendees') }}
),

occurrences as (
    select source_file, uid, occurrence_start, mailbox, organizer_email, sequence, dtstamp
    from {{ source('calendar', 'occurrences') }}
),

joined as (
    select
        attendees.uid,
        attendees.occurrence_start,
        attendees.email,
        upper(coalesce(attendees.partstat, 'NEEDS-ACTION')) as partstat,
        upper(coalesce(attendees.role, 'REQ-PARTICIPANT')) as role,
        attendees.common_name,
        row_number() over (
            partition by attendees.uid, attendees.occurrence_start, attendees.email
            order by
                case
                    when lower(occurrences.mailbox) = attendees.email then 0
                    when lower(occurrences.mailbox) = occurrences.organizer_email then 1
                    else 2
                end,
                occurrences.sequence desc nulls last,
                occurrences.dtstamp desc nulls last,
                attendees.source_file
        ) as copy_rank
    from attendees
    inner join occurrences
        on attendees.source_file = occurrences.source_file
        and attendees.uid = occurrences.uid
        and attendees.occurrence_start = occurrences.occurrence_start
    where attendees.email is not null
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
from joined
where copy_rank = 1
