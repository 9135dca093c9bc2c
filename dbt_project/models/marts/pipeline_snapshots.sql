{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of',
    )
}}

{#- Every run's pipeline coverage, kept by as_of; a re-run with the same as_of replaces its rows. -#}
select
    {{ as_of_date() }} as as_of,
    coverage.*
from {{ ref('pipeline_coverage') }} as coverage
