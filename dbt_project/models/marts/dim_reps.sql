with

users as (
    select * from {{ ref('stg_crm__users') }}
),

roles as (
    select user_role_id, role_name from {{ ref('stg_crm__user_roles') }}
)

select
    users.rep_id,
    users.rep_name,
    users.email,
    users.title,
    roles.role_name as team,
    users.user_role_id,
    users.manager_id,
    managers.rep_name as manager_name,
    users.time_zone,
    users.hire_date,
    users.is_active
from users
left join roles on users.user_role_id = roles.user_role_id
left join users as managers on users.manager_id = managers.rep_id
