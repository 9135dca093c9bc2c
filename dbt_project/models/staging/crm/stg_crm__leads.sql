{{ config(materialized='view') }}

{{ canonical_crm_model('leads', [
    'lead_id', 'first_name', 'last_name', 'email', 'company', 'industry', 'lead_source', 'status', 'owner_id',
    'is_converted', 'converted_date', 'converted_account_id', 'converted_contact_id',
    'converted_opportunity_id', 'created_at', 'system_modstamp'
]) }}
