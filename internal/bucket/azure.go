package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// AzureOptions are the ways to reach an Azure Blob Storage container, tried
// in this order: a connection string, a SAS token, an account key,
// workload identity (a federated token file).
type AzureOptions struct {
	// Endpoint is the blob service URL (https://ACCOUNT.blob.core.windows.net,
	// or Azurite's http://127.0.0.1:10000/devstoreaccount1). Empty: from the
	// connection string, else from Account.
	Endpoint         string
	ConnectionString string
	SASToken         string
	Account          string
	AccountKey       string
	// Workload identity: the federated token file, the application's client
	// ID and the tenant (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID,
	// AZURE_TENANT_ID); AuthorityHost is AZURE_AUTHORITY_HOST (empty: the
	// public cloud).
	TokenFile     string
	ClientID      string
	TenantID      string
	AuthorityHost string
	// Transport sends the requests; nil means the SDK's default client.
	Transport policy.Transporter
}

// Method names the credential NewAzure chose, for logs (never a secret).
func (o AzureOptions) Method() string {
	switch {
	case o.ConnectionString != "":
		return "connection string"
	case o.SASToken != "":
		return "SAS token"
	case o.Account != "" && o.AccountKey != "":
		return "account key"
	case o.TokenFile != "":
		return "workload identity"
	}
	return ""
}

type azureStore struct {
	c *container.Client
}

// NewAzure returns the Store of one container.
func NewAzure(containerName string, o AzureOptions) (Store, error) {
	endpoint := strings.TrimSuffix(o.Endpoint, "/")
	if endpoint == "" && o.Account != "" {
		endpoint = "https://" + o.Account + ".blob.core.windows.net"
	}
	opts := &azblob.ClientOptions{}
	opts.Transport = o.Transport
	var (
		client *azblob.Client
		err    error
	)
	switch {
	case o.ConnectionString != "":
		client, err = azblob.NewClientFromConnectionString(o.ConnectionString, opts)
		if err != nil {
			// The SDK's message quotes nothing of the string; keep it so.
			return nil, fmt.Errorf("the Azure Storage connection string does not parse (want AccountName=...;AccountKey=...;BlobEndpoint=... or DefaultEndpointsProtocol=...): %w", redact(err, o.ConnectionString))
		}
		if endpoint != "" {
			// An explicit endpoint wins over the connection string's.
			return nil, errors.New(`"bucket-endpoint" and a connection string both name the endpoint: drop one (the connection string's BlobEndpoint= is used when it has one)`)
		}
	case endpoint == "":
		return nil, errors.New(`no Azure Blob endpoint: set "bucket-endpoint" (https://ACCOUNT.blob.core.windows.net), AZURE_STORAGE_ACCOUNT, or a connection string`)
	case o.SASToken != "":
		sas := strings.TrimPrefix(o.SASToken, "?")
		client, err = azblob.NewClientWithNoCredential(endpoint+"/?"+sas, opts)
	case o.Account != "" && o.AccountKey != "":
		cred, cerr := azblob.NewSharedKeyCredential(o.Account, o.AccountKey)
		if cerr != nil {
			return nil, fmt.Errorf("the Azure Storage account key does not decode (it is base64): %w", redact(cerr, o.AccountKey))
		}
		client, err = azblob.NewClientWithSharedKeyCredential(endpoint, cred, opts)
	case o.TokenFile != "":
		if o.ClientID == "" || o.TenantID == "" {
			return nil, errors.New("workload identity needs AZURE_CLIENT_ID and AZURE_TENANT_ID beside AZURE_FEDERATED_TOKEN_FILE")
		}
		idOpts := &azidentity.WorkloadIdentityCredentialOptions{ClientID: o.ClientID, TenantID: o.TenantID, TokenFilePath: o.TokenFile}
		idOpts.Transport = o.Transport
		if o.AuthorityHost != "" {
			idOpts.Cloud.ActiveDirectoryAuthorityHost = o.AuthorityHost
			// A sovereign or private authority is not in the public
			// cloud's instance list.
			idOpts.DisableInstanceDiscovery = true
		}
		cred, cerr := azidentity.NewWorkloadIdentityCredential(idOpts)
		if cerr != nil {
			return nil, fmt.Errorf("workload identity: %w", cerr)
		}
		opts.InsecureAllowCredentialWithHTTP = isLoopbackHTTP(endpoint)
		client, err = azblob.NewClient(endpoint, cred, opts)
	default:
		return nil, errors.New("no Azure credentials: set bucket-connection-string (AZURE_STORAGE_CONNECTION_STRING), bucket-sas-token (AZURE_STORAGE_SAS_TOKEN), AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, or workload identity (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID)")
	}
	if err != nil {
		return nil, fmt.Errorf("setting up the Azure Blob client for %s: %w", endpoint, err)
	}
	return &azureStore{c: client.ServiceClient().NewContainerClient(containerName)}, nil
}

func isLoopbackHTTP(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

// redact removes a secret from an error's text.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "***"))
}

func (s *azureStore) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	opts := &container.ListBlobsFlatOptions{}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	pager := s.c.NewListBlobsFlatPager(opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, azureError(err)
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			o := Object{Key: *b.Name}
			if p := b.Properties; p != nil {
				if p.ContentLength != nil {
					o.Size = *p.ContentLength
				}
				o.MD5 = p.ContentMD5
			}
			out = append(out, o)
		}
	}
	return out, nil
}

func (s *azureStore) Put(ctx context.Context, key string, data, sum []byte) error {
	_, err := s.c.NewBlockBlobClient(key).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		HTTPHeaders:             &blob.HTTPHeaders{BlobContentMD5: sum},
		TransactionalValidation: blob.TransferValidationTypeMD5(sum),
	})
	return azureError(err)
}

func (s *azureStore) Delete(ctx context.Context, key string) error {
	_, err := s.c.NewBlobClient(key).Delete(ctx, nil)
	return azureError(err)
}

// azureError shortens the SDK's multi-line response dumps to the status and
// error code, which say what to fix.
func azureError(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("the Azure Blob Storage service answered %d %s", re.StatusCode, re.ErrorCode)
	}
	return err
}
