{{ config(enabled=crm_family() == 'salesforce') }}

with

source as (
    select * from {{ source('salesforce', 'contact') }}
),

typed as (
    select
        {{ clean_text('id') }} as contact_id,
        {{ clean_text('accountid') }} as account_id,
        {{ clean_text('firstname') }} as first_name,
        {{ clean_text('lastname') }} as last_name,
        lower({{ clean_text('email') }}) as email,
        {{ clean_text('title') }} as title,
        {{ clean_text('ownerid') }} as owner_id,
        {{ parse_timestamp('createddate') }} as created_at,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        coalesce({{ parse_bool('isdeleted') }}, false) as is_deleted,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'contact_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
)

select contact_id, account_id, first_name, last_name, email, title, owner_id, created_at, system_modstamp
from latest
where version_rank = 1 and contact_id is not null and not is_deleted
    and {{ not_quarantined('contact', 'contact_id') }}
