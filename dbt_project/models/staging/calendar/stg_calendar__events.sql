{#- One row per meeting occurrence: the same meeting exported from several mailboxes is one meeting.
    With Salesforce, the CRM's Events no mailbox holds are meetings too (stg_calendar__crm_events). -#}
with

occurrences as (
    select * from {{ source('calendar', 'occurrences') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by uid, occurrence_start
            order by
                case when organizer_email is not null and lower(mailbox) = organizer_email then 0 else 1 end,
                sequence desc nulls last,
                dtstamp desc nulls last,
                source_file
        ) as copy_rank
    from occurrences
    where uid is not null and occurrence_start is not null
)

select
    {{ dbt.hash("uid || '|' || cast(occurrence_start as varchar)") }} as event_occurrence_id,
    uid,
    occurrence_start as start_at,
    occurrence_end as end_at,
    is_all_day,
    is_recurring,
    upper(coalesce(status, 'CONFIRMED')) as status,
    upper(coalesce(status, '')) = 'CANCELLED' as is_cancelled,
    summary,
    organizer_email,
    categories,
    (lower(coalesce(categories, '')) like '%training%' or lower(coalesce(categories, '')) like '%onboarding%')
        as is_training,
    created_at,
    coalesce(created_at, occurrence_start) as booked_at,
    ({{ epoch_seconds('occurrence_end') }} - {{ epoch_seconds('occurrence_start') }}) / 60.0 as duration_minutes,
    mailbox as source_mailbox,
    cast('mailbox' as {{ dbt.type_string() }}) as origin
from ranked
where copy_rank = 1
{%- if crm_family() == 'salesforce' %}

union all

select
    event_occurrence_id,
    uid,
    start_at,
    end_at,
    is_all_day,
    is_recurring,
    status,
    is_cancelled,
    summary,
    organizer_email,
    categories,
    is_training,
    created_at,
    booked_at,
    duration_minutes,
    cast(null as {{ dbt.type_string() }}) as source_mailbox,
    cast('crm_event' as {{ dbt.type_string() }}) as origin
from {{ ref('stg_calendar__crm_events') }}
{%- endif %}
