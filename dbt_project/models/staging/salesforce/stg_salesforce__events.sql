{{ config(enabled=crm_family() == 'salesforce') }}

{#- Meetings logged in the CRM (Event), latest version per Id, deleted and quarantined ones
    removed (an Event ending before it starts is quarantined, rule end_before_start). Empty when
    the source has no Event object. Merged with the mailbox calendars in stg_calendar__crm_events. -#}
with

source as (
    select * from {{ source('salesforce', 'event') }}
),

typed as (
    select
        {{ clean_text('id') }} as event_id,
        {{ clean_text('whoid') }} as who_id,
        {{ clean_text('whatid') }} as what_id,
        {{ clean_text('ownerid') }} as owner_id,
        {{ clean_text('subject') }} as subject,
        {{ clean_text('type') }} as event_type,
        {{ parse_timestamp('startdatetime') }} as start_at,
        {{ parse_timestamp('enddatetime') }} as end_at,
        coalesce({{ parse_bool('isalldayevent') }}, false) as is_all_day,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        coalesce({{ parse_bool('isdeleted') }}, false) as is_deleted,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'event_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select
    event_id, who_id, what_id, owner_id, subject, event_type, start_at, end_at, is_all_day,
    system_modstamp
from latest
where version_rank = 1 and event_id is not null and not is_deleted
    and {{ not_quarantined('event', 'event_id') }}
