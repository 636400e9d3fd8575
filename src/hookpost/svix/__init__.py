"""The Svix API at ``/api/v1``: the operations of Svix's API that map onto what hookpost has,
answered as Svix answers them, so that the official Svix SDKs work against hookpost unchanged.
A third face beside the native API and the sites, over the same access model and services;
one module per Svix resource."""
