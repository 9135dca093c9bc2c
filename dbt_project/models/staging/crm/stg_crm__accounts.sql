{{ config(materialized='view') }}

{{ canonical_crm_model('accounts', [
    'account_id', 'account_name', 'industry', 'number_of_employees', 'annual_revenue', 'billing_country',
    'owner_id', 'created_at', 'system_modstamp'
]) }}
