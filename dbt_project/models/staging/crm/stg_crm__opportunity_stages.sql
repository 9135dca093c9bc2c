{{ config(materialized='view') }}

{{ canonical_crm_model('opportunity_stages', [
    'stage_name', 'stage_order', 'is_closed', 'is_won', 'default_probability', 'forecast_category'
]) }}
