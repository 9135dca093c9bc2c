{{ config(materialized='view') }}

{{ canonical_crm_model('contacts', [
    'contact_id', 'account_id', 'first_name', 'last_name', 'email', 'title', 'owner_id', 'created_at',
    'system_modstamp'
]) }}
