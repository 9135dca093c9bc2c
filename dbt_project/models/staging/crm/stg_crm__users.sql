{{ config(materialized='view') }}

{{ canonical_crm_model('users', [
    'rep_id', 'rep_name', 'email', 'email_domain', 'title', 'user_role_id', 'manager_id', 'is_active',
    'time_zone', 'hire_date', 'created_at', 'system_modstamp'
]) }}
