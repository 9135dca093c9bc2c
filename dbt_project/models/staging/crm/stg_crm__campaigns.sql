{{ config(materialized='view') }}

{{ canonical_crm_model('campaigns', [
    'campaign_id', 'campaign_name', 'campaign_type', 'status', 'start_date', 'end_date', 'budgeted_cost',
    'actual_cost', 'created_at', 'system_modstamp'
]) }}
