{{ config(materialized='view') }}

{{ canonical_crm_model('opportunities', [
    'opportunity_id', 'opportunity_name', 'account_id', 'owner_id', 'opportunity_type', 'lead_source',
    'campaign_id', 'stage_name', 'amount', 'probability', 'forecast_category', 'close_date', 'is_closed',
    'is_won', 'created_at', 'system_modstamp'
]) }}
