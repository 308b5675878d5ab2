/**
 * Network (seed spec 5.1): a VPC over two AZs with the seed's CIDRs — public subnets for the load
 * balancer and the NAT gateway only, private subnets for the coordinator's tasks — gateway endpoints
 * for S3 and DynamoDB and interface endpoints for ECR, Secrets Manager and CloudWatch Logs, so that
 * the coordinator's traffic to AWS stays inside the VPC, and flow logs of all traffic.
 */
import { Stack, Validations, type StackProps } from 'aws-cdk-lib';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InterfaceVpcEndpointAwsService,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
  type AllocateCidrRequest,
  type IIpAddresses,
  type SubnetIpamOptions,
  type VpcIpamOptions,
} from 'aws-cdk-lib/aws-ec2';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { FLOW_LOGS_PREFIX } from './data-stack';

/** Seed spec 5.1 networking: 10.0.0.0/16, public 10.0.1.0/24 and 10.0.2.0/24, private 10.0.10.0/24 and 10.0.11.0/24. */
export const VPC_CIDR = '10.0.0.0/16';
export const SUBNET_CIDRS = {
  public: ['10.0.1.0/24', '10.0.2.0/24'],
  private: ['10.0.10.0/24', '10.0.11.0/24'],
} as const;

/** Gives the VPC the seed's CIDRs instead of CDK's even split of the range. */
class SeedCidrs implements IIpAddresses {
  allocateVpcCidr(): VpcIpamOptions {
    return { cidrBlock: VPC_CIDR };
  }

  allocateSubnetsCidr(input: AllocateCidrRequest): SubnetIpamOptions {
    const next = { public: 0, private: 0 };
    return {
      allocatedSubnets: input.requestedSubnets.map((s) => {
        const kind = s.configuration.subnetType === SubnetType.PUBLIC ? 'public' : 'private';
        const cidr = SUBNET_CIDRS[kind][next[kind]++];
        if (cidr === undefined) throw new Error(`the seed's networking has ${SUBNET_CIDRS[kind].length} ${kind} subnets, not more`);
        return { cidr };
      }),
    };
  }
}

export interface NetworkStackProps extends StackProps {
  readonly availabilityZones: readonly string[];
  readonly natGateways: number;
  /** Where the flow logs go (the data stack's log bucket). */
  readonly logBucket: IBucket;
}

export class NetworkStack extends Stack {
  readonly vpc: Vpc;

  constructor(scope: Construct, id: string, props: NetworkStackProps) {
    super(scope, id, props);

    this.vpc = new Vpc(this, 'Vpc', {
      ipAddresses: new SeedCidrs(),
      // The default security group loses its rules (CDK's custom resource): nothing here uses it.
      restrictDefaultSecurityGroup: true,
      availabilityZones: [...props.availabilityZones],
      natGateways: props.natGateways,
      subnetConfiguration: [
        // Only the load balancer and the NAT gateway (its own Elastic IP) live here: nothing gets a public IP by default.
        { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'private', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
      ],
      gatewayEndpoints: {
        S3: { service: GatewayVpcEndpointAwsService.S3, subnets: [{ subnetType: SubnetType.PRIVATE_WITH_EGRESS }] },
        DynamoDB: { service: GatewayVpcEndpointAwsService.DYNAMODB, subnets: [{ subnetType: SubnetType.PRIVATE_WITH_EGRESS }] },
      },
      flowLogs: {
        all: { destination: FlowLogDestination.toS3(props.logBucket, FLOW_LOGS_PREFIX), trafficType: FlowLogTrafficType.ALL },
      },
    });

    // Image pulls (ECR API + registry; the layers come from S3 through the gateway endpoint), the
    // task's secrets and its log stream (awslogs, which also carries the EMF metrics).
    const interfaceEndpoints = {
      EcrApi: InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: InterfaceVpcEndpointAwsService.ECR_DOCKER,
      SecretsManager: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      Logs: InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    };
    const endpointSg = new SecurityGroup(this, 'EndpointSecurityGroup', { vpc: this.vpc, allowAllOutbound: false, description: 'fedcare interface endpoints: HTTPS from inside the VPC' });
    endpointSg.addIngressRule(Peer.ipv4(VPC_CIDR), Port.tcp(443), 'HTTPS from the VPC');
    for (const [name, service] of Object.entries(interfaceEndpoints)) {
      this.vpc.addInterfaceEndpoint(name, { service, subnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS }, privateDnsEnabled: true, securityGroups: [endpointSg], open: false });
    }

    for (const subnet of this.vpc.publicSubnets) {
      const route = subnet.node.tryFindChild('DefaultRoute');
      if (route) {
        Validations.of(route).acknowledge({
          id: 'HIPAA.Security-VPCNoUnrestrictedRouteToIGW',
          reason: 'The public subnets hold only the internet-facing load balancer (hospitals connect from the internet) and the NAT gateway, which need this route; tasks run in private subnets whose default route is the NAT gateway.',
        });
      }
    }
  }
}
