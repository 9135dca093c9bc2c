{{ config(materialized='view') }}

{{ canonical_crm_model('user_roles', [
    'user_role_id', 'role_name', 'parent_role_id', 'system_modstamp'
]) }}
