"""The private network the producer VM and the Dataproc cluster share.

No VM has a public IP: Cloud NAT gives egress (CoinGecko, PyPI, Debian), Private
Google Access reaches Google APIs. Ingress is closed except cluster-internal
traffic and SSH from Google's IAP range to the producer VM.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from infra.cdk import google
from infra.environments import FLOW_LOG_CONFIG, EnvironmentConfig

#: Source range of Identity-Aware Proxy TCP forwarding (``gcloud compute ssh --tunnel-through-iap``).
IAP_RANGE = "35.235.240.0/20"


class Network(Construct):
    """VPC, subnet with Private Google Access and flow logs, router + NAT, firewall rules."""

    def __init__(self, scope: Construct, id_: str, cfg: EnvironmentConfig, after: list[Any]) -> None:
        super().__init__(scope, id_)
        self.producer_tag = cfg.name_of("producer", "vm")
        self.processing_tag = cfg.name_of("processing", "node")

        self.vpc = google.compute_network.ComputeNetwork(
            self, "vpc", name=cfg.name_of("network", "vpc"), project=cfg.project,
            auto_create_subnetworks=False, depends_on=after,
        )
        self.subnet = google.compute_subnetwork.ComputeSubnetwork(
            self, "subnet", name=cfg.name_of("network", "subnet"), project=cfg.project, region=cfg.region,
            network=self.vpc.id, ip_cidr_range=cfg.network_cidr, private_ip_google_access=True,
            log_config=FLOW_LOG_CONFIG,  # billed as vended logs (infra/reports/cost.py)
        )
        router = google.compute_router.ComputeRouter(
            self, "router", name=cfg.name_of("network", "router"), project=cfg.project, region=cfg.region,
            network=self.vpc.id,
        )
        self.nat = google.compute_router_nat.ComputeRouterNat(
            self,
            "nat",
            name=cfg.name_of("network", "nat"),
            project=cfg.project,
            region=cfg.region,
            router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetwork=[
                google.compute_router_nat.ComputeRouterNatSubnetwork(
                    name=self.subnet.id, source_ip_ranges_to_nat=["ALL_IP_RANGES"]
                )
            ],
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
        )
        processing_internal = google.compute_firewall.ComputeFirewall(
            self,
            "processing-internal",
            name=cfg.name_of("network", "allow-processing-internal"),
            project=cfg.project,
            network=self.vpc.id,
            direction="INGRESS",
            description="Dataproc nodes talk to each other (YARN, HDFS, Spark shuffle).",
            source_tags=[self.processing_tag],
            target_tags=[self.processing_tag],
            allow=[
                google.compute_firewall.ComputeFirewallAllow(protocol=protocol) for protocol in ("tcp", "udp", "icmp")
            ],
        )
        iap_ssh = google.compute_firewall.ComputeFirewall(
            self,
            "iap-ssh",
            name=cfg.name_of("network", "allow-iap-ssh"),
            project=cfg.project,
            network=self.vpc.id,
            direction="INGRESS",
            description="SSH to the producer VM through IAP only (journalctl); IAM still decides who.",
            source_ranges=[IAP_RANGE],
            target_tags=[self.producer_tag],
            allow=[google.compute_firewall.ComputeFirewallAllow(protocol="tcp", ports=["22"])],
        )
        #: What a VM needs before it boots: egress for its installs, and its firewall rules.
        self.ready = [self.nat, processing_internal, iap_ssh]
