{{ config(materialized='view') }}

{{ canonical_crm_model('opportunity_history', [
    'opportunity_history_id', 'opportunity_id', 'stage_name', 'amount', 'probability',
    'forecast_category', 'close_date', 'created_at', 'system_modstamp'
]) }}
