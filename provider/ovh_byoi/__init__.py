"""Install your own OS image on OVHcloud dedicated servers, as a Pulumi resource."""
