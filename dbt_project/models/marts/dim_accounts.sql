select
    account_id,
    account_name,
    industry,
    {{ size_segment('number_of_employees') }} as size_segment,
    number_of_employees,
    annual_revenue,
    billing_country,
    owner_id
from {{ ref('stg_crm__accounts') }}
