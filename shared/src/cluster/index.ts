/** @fedcare/shared/cluster: federated clustering (autoencoder latents, federated k-means, ARI / simplified silhouette). */
export { PlainAggregator, SecAggAggregator, type Aggregator, type Received, type SecAggAggregatorOptions } from './aggregator';
export {
  assignPoints,
  candidatePool,
  federatedKMeans,
  federatedMoments,
  federatedSilhouette,
  greedyCosts,
  lloydStats,
  type KMeansOptions,
  type KMeansResult,
  type Moments,
  type Site,
} from './kmeans';
export { adjustedRandIndex, dominantColumn, nearestCentroid, simplifiedSilhouettePoint, simplifiedSilhouetteSums, squaredDistanceRow } from './metrics';
export {
  ClusterHospital,
  DEFAULT_CLUSTER_OPTIONS,
  REPORT_FEATURES,
  flatWidth,
  runFederatedClustering,
  type ClusterOptions,
  type ClusterProfile,
  type ClusterRun,
  type FeatureDifference,
} from './federation';
