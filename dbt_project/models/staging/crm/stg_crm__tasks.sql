{{ config(materialized='view') }}

{{ canonical_crm_model('tasks', [
    'task_id', 'who_id', 'what_id', 'owner_id', 'subject', 'task_subtype', 'status', 'activity_date',
    'created_at', 'system_modstamp'
]) }}
