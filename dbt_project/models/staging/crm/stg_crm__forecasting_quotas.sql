{{ config(materialized='view') }}

{{ canonical_crm_model('forecasting_quotas', [
    'quota_id', 'quota_owner_id', 'start_date', 'quota_amount', 'system_modstamp'
]) }}
